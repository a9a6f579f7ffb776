import type { Translation } from '../../translation.js';
import type enUS from '../en-US/admin.js';

const admin: Translation<typeof enUS> = {};

export default admin;
